//! The detector on a virtual clock: counters advance by rate × window, time
//! by 100 ms steps; nothing waits.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;

const WINDOW: Duration = Duration::from_millis(100);
const ENTER: u64 = 5_000;
const EXIT: u64 = 2_500;

fn target() -> IpAddr {
    "192.0.2.10".parse().unwrap()
}

fn detector() -> Detector {
    let thresholds = [
        Class::Syn,
        Class::TcpOther,
        Class::Udp,
        Class::Icmp,
        Class::Fragment,
    ]
    .into_iter()
    .map(|class| {
        (
            class,
            Threshold {
                enter_pps: ENTER,
                exit_pps: EXIT,
            },
        )
    })
    .collect::<BTreeMap<_, _>>();
    Detector::new(DetectorConfig::new(thresholds))
}

/// Cumulative counters fed to the detector, one reading per window.
struct Feed {
    detector: Detector,
    now: Instant,
    counters: BTreeMap<(IpAddr, Class), (u64, u64)>,
}

impl Feed {
    fn new() -> Self {
        Self {
            detector: detector(),
            now: Instant::now(),
            counters: BTreeMap::new(),
        }
    }

    /// Runs `seconds` at `pps` packets of `size` bytes per second for each
    /// (target, class), returning every event with its time since `start`.
    fn run(
        &mut self,
        seconds: f64,
        rates: &[(IpAddr, Class, u64)],
        start: Instant,
    ) -> Vec<(Duration, DetectorEvent)> {
        let steps =
            u32::try_from(Duration::from_secs_f64(seconds).as_millis() / WINDOW.as_millis())
                .unwrap();
        let mut events = Vec::new();
        for _ in 0..steps {
            self.now += WINDOW;
            let mut readings = Vec::new();
            for &(target, class, pps) in rates {
                let counter = self.counters.entry((target, class)).or_default();
                counter.0 += pps / 10;
                counter.1 += pps / 10 * 60;
                readings.push(CounterReading {
                    target,
                    class,
                    packets: counter.0,
                    bytes: counter.1,
                });
            }
            for event in self.detector.counters(self.now, &readings) {
                events.push((self.now.duration_since(start), event));
            }
        }
        events
    }
}

fn started(events: &[(Duration, DetectorEvent)]) -> Vec<(Duration, Flood)> {
    events
        .iter()
        .filter_map(|(at, event)| match event {
            DetectorEvent::FloodStarted(flood) => Some((*at, flood.clone())),
            _ => None,
        })
        .collect()
}

fn ended(events: &[(Duration, DetectorEvent)]) -> Vec<Duration> {
    events
        .iter()
        .filter_map(|(at, event)| matches!(event, DetectorEvent::FloodEnded(_)).then_some(*at))
        .collect()
}

#[test]
fn legit_traffic_at_half_the_threshold_never_triggers() {
    let mut feed = Feed::new();
    let start = feed.now;
    let events = feed.run(
        120.0,
        &[
            (target(), Class::Syn, ENTER / 2),
            (target(), Class::Udp, ENTER / 2),
        ],
        start,
    );
    assert_eq!(events, []);
}

#[test]
fn a_flood_is_called_within_two_windows() {
    let mut feed = Feed::new();
    let start = feed.now;
    feed.run(5.0, &[(target(), Class::Syn, 500)], start);
    let flood_start = feed.now;
    let events = feed.run(2.0, &[(target(), Class::Syn, 50_000)], flood_start);
    let started = started(&events);
    assert_eq!(started.len(), 1, "{events:?}");
    assert!(
        started[0].0 <= Duration::from_millis(200),
        "{:?}",
        started[0].0
    );
    assert_eq!(started[0].1.class, Class::Syn);
    assert!((started[0].1.pps - 50_000.0).abs() < 1.0);
}

#[test]
fn a_single_window_spike_is_not_a_flood() {
    let mut feed = Feed::new();
    let start = feed.now;
    feed.run(2.0, &[(target(), Class::Udp, 100)], start);
    let mut events = feed.run(0.1, &[(target(), Class::Udp, 20_000)], start);
    events.extend(feed.run(5.0, &[(target(), Class::Udp, 100)], start));
    assert_eq!(started(&events), []);
}

#[test]
fn a_flood_ends_after_the_minimum_active_time_and_the_exit_hold() {
    let mut feed = Feed::new();
    let start = feed.now;
    let events = feed.run(3.0, &[(target(), Class::Udp, 40_000)], start);
    assert_eq!(started(&events).len(), 1);
    let stop = feed.now;
    let events = feed.run(30.0, &[(target(), Class::Udp, 0)], stop);
    let ended = ended(&events);
    assert_eq!(ended.len(), 1, "{events:?}");
    // min_active (10 s from the start, ~7 s after the stop) dominates the
    // exit hold (2 s of quiet).
    assert!(
        ended[0] >= Duration::from_secs(7) && ended[0] <= Duration::from_secs(8),
        "{:?}",
        ended[0]
    );
}

#[test]
fn a_long_flood_ends_one_exit_hold_after_it_stops() {
    let mut feed = Feed::new();
    let start = feed.now;
    feed.run(20.0, &[(target(), Class::Udp, 40_000)], start);
    let stop = feed.now;
    let events = feed.run(10.0, &[(target(), Class::Udp, 0)], stop);
    let ended = ended(&events);
    assert_eq!(ended.len(), 1, "{events:?}");
    // The average decays below exit within ~3 τ, then 2 s of hold.
    assert!(
        ended[0] >= Duration::from_secs(2) && ended[0] <= Duration::from_secs(5),
        "{:?}",
        ended[0]
    );
}

#[test]
fn hysteresis_keeps_a_flood_that_hovers_between_exit_and_enter() {
    let mut feed = Feed::new();
    let start = feed.now;
    let events = feed.run(3.0, &[(target(), Class::Syn, 20_000)], start);
    assert_eq!(started(&events).len(), 1);
    // 4 000 pps: below enter, above exit. The flood goes on …
    let events = feed.run(60.0, &[(target(), Class::Syn, 4_000)], start);
    assert_eq!(ended(&events), Vec::<Duration>::new());
    assert!(
        events
            .iter()
            .any(|(_, e)| matches!(e, DetectorEvent::FloodUpdated(_)))
    );
    // … and the same rate never starts one.
    let mut calm = Feed::new();
    let calm_start = calm.now;
    assert_eq!(
        started(&calm.run(60.0, &[(target(), Class::Syn, 4_000)], calm_start)),
        []
    );
}

#[test]
fn a_counter_reset_is_not_a_flood() {
    let mut feed = Feed::new();
    let start = feed.now;
    feed.run(5.0, &[(target(), Class::Syn, 1_000)], start);
    // The table was re-applied: counters start again from zero.
    feed.counters.clear();
    let events = feed.run(5.0, &[(target(), Class::Syn, 1_000)], start);
    assert_eq!(events, []);
}

#[test]
fn targets_and_classes_are_independent() {
    let mut feed = Feed::new();
    let other: IpAddr = "192.0.2.20".parse().unwrap();
    let start = feed.now;
    let events = feed.run(
        3.0,
        &[
            (target(), Class::Udp, 40_000),
            (other, Class::Udp, 100),
            (target(), Class::Syn, 100),
        ],
        start,
    );
    let started = started(&events);
    assert_eq!(started.len(), 1);
    assert_eq!(
        (started[0].1.target, started[0].1.class),
        (target(), Class::Udp)
    );
}

fn packet(source: &str, protocol: u8, port: u16, flags: Option<u8>, length: u16) -> PacketSample {
    PacketSample {
        via: None,
        source: source.parse().unwrap(),
        destination: target(),
        protocol,
        source_port: Some(40_000),
        destination_port: Some(port),
        tcp_flags: flags,
        length,
        ttl: 60,
        fragment: false,
    }
}

#[test]
fn a_spoofed_syn_flood_has_no_source_in_its_signature() {
    let mut feed = Feed::new();
    let start = feed.now;
    // Sources all over the address space.
    let samples: Vec<PacketSample> = (0..400_u32)
        .map(|i| {
            packet(
                &format!("{}.{}.{}.7", 1 + i % 200, i % 251, i % 13),
                6,
                443,
                Some(0x02),
                40,
            )
        })
        .collect();
    feed.detector.sampled(start, &samples);
    let events = feed.run(1.0, &[(target(), Class::Syn, 50_000)], start);
    let signature = &started(&events)[0].1.signature;
    assert_eq!(signature.protocol, Some(6));
    assert_eq!(signature.destination_port, Some(443));
    assert_eq!(signature.tcp_flags, Some(0x02));
    assert_eq!(signature.length, Some((40, 40)));
    assert_eq!(signature.source_prefixes, []);
}

#[test]
fn a_flood_tells_which_routers_handed_it_over() {
    const TELCO_A: LinkAddress = [0x02, 0, 0, 0, 0, 0x0a];
    const TELCO_B: LinkAddress = [0x02, 0, 0, 0, 0, 0x0b];
    let mut feed = Feed::new();
    let start = feed.now;
    // Five in eight samples came from telco-a's router, two from
    // telco-b's; one without a link address counts for neither.
    let samples: Vec<PacketSample> = (0..400_u32)
        .map(|i| PacketSample {
            via: match i % 8 {
                0 | 1 => Some(TELCO_B),
                7 => None,
                _ => Some(TELCO_A),
            },
            ..packet(
                &format!("{}.{}.9.7", 1 + i % 200, i % 251),
                6,
                443,
                Some(0x02),
                40,
            )
        })
        .collect();
    feed.detector.sampled(start, &samples);
    let events = feed.run(1.0, &[(target(), Class::Syn, 50_000)], start);
    let via = &started(&events)[0].1.via;
    assert_eq!(via.len(), 2, "{via:?}");
    assert_eq!(via[0].0, TELCO_A);
    assert!((via[0].1 - 0.625).abs() < 1e-9, "{via:?}");
    assert_eq!(via[1].0, TELCO_B);
    assert!((via[1].1 - 0.25).abs() < 1e-9, "{via:?}");
}

#[test]
fn a_few_legitimate_packets_do_not_widen_the_length_range() {
    let mut feed = Feed::new();
    let start = feed.now;
    // Spoofed SYNs of 40 bytes, and an app's SYNs of 60 (TCP options).
    let mut samples: Vec<PacketSample> = (0..400_u32)
        .map(|i| {
            packet(
                &format!("{}.{}.9.7", 1 + i % 200, i % 251),
                6,
                443,
                Some(0x02),
                40,
            )
        })
        .collect();
    samples.extend((0..10).map(|_| packet("198.51.100.66", 6, 443, Some(0x02), 60)));
    feed.detector.sampled(start, &samples);
    let events = feed.run(1.0, &[(target(), Class::Syn, 50_000)], start);
    let signature = &started(&events)[0].1.signature;
    assert_eq!(signature.length, Some((40, 40)), "the app's SYNs stay out");
}

#[test]
fn a_concentrated_udp_flood_names_its_source_prefixes() {
    let mut feed = Feed::new();
    let start = feed.now;
    let mut samples: Vec<PacketSample> = (0..300_u32)
        .map(|i| {
            let source = if i % 2 == 0 {
                format!("198.51.100.{}", i % 250)
            } else {
                format!("203.0.113.{}", i % 250)
            };
            packet(&source, 17, 53, None, 512 + u16::try_from(i % 8).unwrap())
        })
        .collect();
    // A little legit traffic mixed in: other ports, other sources.
    samples.extend((0..20).map(|i| packet(&format!("100.64.{i}.1"), 17, 443, None, 1200)));
    feed.detector.sampled(start, &samples);
    let events = feed.run(1.0, &[(target(), Class::Udp, 60_000)], start);
    let signature = &started(&events)[0].1.signature;
    assert_eq!(signature.protocol, Some(17));
    assert_eq!(signature.destination_port, Some(53));
    assert_eq!(signature.tcp_flags, None);
    assert_eq!(signature.length, Some((512, 519)));
    let expected: Vec<IpNet> = vec![
        "198.51.100.0/24".parse().unwrap(),
        "203.0.113.0/24".parse().unwrap(),
    ];
    assert_eq!(signature.source_prefixes, expected);
}

#[test]
fn old_samples_do_not_shape_signatures() {
    let mut feed = Feed::new();
    let start = feed.now;
    let old: Vec<PacketSample> = (0..100)
        .map(|_| packet("198.51.100.1", 17, 53, None, 100))
        .collect();
    feed.detector.sampled(start, &old);
    feed.run(5.0, &[(target(), Class::Udp, 100)], start);
    let fresh: Vec<PacketSample> = (0..100)
        .map(|_| packet("203.0.113.9", 17, 123, None, 468))
        .collect();
    let now = feed.now;
    feed.detector.sampled(now, &fresh);
    let events = feed.run(1.0, &[(target(), Class::Udp, 60_000)], start);
    let signature = &started(&events)[0].1.signature;
    assert_eq!(signature.destination_port, Some(123));
    assert_eq!(
        signature.source_prefixes,
        ["203.0.113.0/24".parse::<IpNet>().unwrap()]
    );
}
